"""The language server and nothing else: LSP requests in, calls on assist/, agent/ and
training/ out, answers back as lsprotocol types. The command line lives in cli/."""
