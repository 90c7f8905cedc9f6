"""SmallCoder's front doors: the language server and the command line.

Both turn requests into calls on model/, analyzers/, agent/ and training/.
"""
