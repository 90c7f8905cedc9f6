; Functions (see ecma/functions.scm for the captures); one in an impl or trait is a method.
(function_item name: (identifier) @name body: (block) @body) @function
