; Functions shared by JavaScript and TypeScript: the capture on the function is its kind
; (@function, @generator, @method, @arrow); a method's @decorator(s) belong to its span.
(function_declaration name: (identifier) @name body: (_) @body) @function
(generator_function_declaration name: (identifier) @name body: (_) @body) @generator
((decorator)* @decorator . (method_definition name: (_) @name body: (_) @body) @method)
(variable_declarator name: (identifier) @name value: [
    (arrow_function body: (_) @body) @arrow
    (function_expression body: (_) @body) @function
    (generator_function body: (_) @body) @generator
  ])
