; Functions (see ecma/functions.scm for the captures); a function named `A::f` or defined in a
; class body is a method.
(function_definition declarator: [
  (function_declarator declarator: (_) @name)
  (pointer_declarator declarator: (function_declarator declarator: (_) @name))
  (reference_declarator (function_declarator declarator: (_) @name))
] body: (compound_statement) @body) @function
