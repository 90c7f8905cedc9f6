; Definitions (see python/definitions.scm for the captures).
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @method
(class_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @class
(enum_declaration name: (identifier) @name) @class
(record_declaration name: (identifier) @name) @class
