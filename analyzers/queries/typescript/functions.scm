; inherits: ecma
(public_field_definition name: (_) @name value: [
    (arrow_function body: (_) @body) @arrow
    (function_expression body: (_) @body) @function
    (generator_function body: (_) @body) @generator
  ])
