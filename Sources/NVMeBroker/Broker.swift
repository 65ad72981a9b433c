// Placeholder until the broker lands (issue 9).
