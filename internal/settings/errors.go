package settings

import "errors"

// ErrUnknownKey is returned when a config file holds a key that names no
// setting (a typo would otherwise be ignored silently).
var ErrUnknownKey = errors.New("unknown key in config file")

// ErrBadValue is returned when a value from a config file or the environment
// is refused by its setting's parser, or is not a scalar.
var ErrBadValue = errors.New("bad setting value")

// ErrNotTOML is returned when a config file does not parse as TOML.
var ErrNotTOML = errors.New("config file is not TOML")
