"""The shells around the kernel: the JSON Lines codec and the command line."""
