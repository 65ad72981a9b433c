import NVMeSpec
