; Functions to explain, rewrite or cut: @function (a method when in a class body), its @name,
; its @body and the string that opens the body alone, its @docstring.
(function_definition
  name: (identifier) @name
  body: (block . (expression_statement . (string) @docstring .)?) @body) @function
