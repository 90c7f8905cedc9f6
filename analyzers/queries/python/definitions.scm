; Definitions: each pattern captures one as @function, @method or @class and its name as @name.
; A @function nested in a class body is reported as a method.
(function_definition name: (identifier) @name) @function
(class_definition name: (identifier) @name) @class
