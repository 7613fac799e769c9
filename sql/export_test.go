package sql

// HashFS lets the external tests hash a file tree of their own.
var HashFS = hashFS
