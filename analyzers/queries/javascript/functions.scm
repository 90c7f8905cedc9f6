; inherits: ecma
(field_definition property: (_) @name value: [
    (arrow_function body: (_) @body) @arrow
    (function_expression body: (_) @body) @function
    (generator_function body: (_) @body) @generator
  ])
