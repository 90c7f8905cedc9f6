; Functions (see ecma/functions.scm for the captures).
(method_declaration name: (identifier) @name body: (block) @body) @method
(constructor_declaration name: (identifier) @name body: (constructor_body) @body) @method
