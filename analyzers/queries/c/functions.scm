; Functions (see ecma/functions.scm for the captures).
(function_definition declarator: [
  (function_declarator declarator: (_) @name)
  (pointer_declarator declarator: (function_declarator declarator: (_) @name))
  (pointer_declarator declarator: (pointer_declarator
    declarator: (function_declarator declarator: (_) @name)))
] body: (compound_statement) @body) @function
