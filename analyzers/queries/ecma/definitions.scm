; Definitions shared by JavaScript and TypeScript (see python/definitions.scm for the captures).
(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(method_definition name: (_) @name) @method
(class_declaration name: (_) @name) @class
(variable_declarator name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @function
