print("nvmegate")
