//go:build !shoestring_format2

package store

// current is this firmware's layout. A new format adds its migration
// here and bumps formatVersion.
var current = schema{version: formatVersion}
