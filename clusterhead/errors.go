package clusterhead

import "errors"

// ErrBackupUnsupported is returned by CH.Backup when the CH's ledger cannot
// be copied by the CH (a CometBFT node: back up its home instead).
var ErrBackupUnsupported = errors.New("online backup needs the bbolt ledger; back up a CometBFT node's home directory instead")

// ErrBadBackup is returned by ReadBackup and Restore for an archive that is
// not a whole IoT-Guard backup (truncated, foreign entries, wrong order).
var ErrBadBackup = errors.New("not a complete iotguard backup")

// ErrRotationUnsupported is returned by CH.RotateKey for a CH whose ledger is
// not the bbolt one: on a CometBFT ledger the genesis registry fixes each
// cluster's CH key, and validators refuse transactions signed by another.
var ErrRotationUnsupported = errors.New("key rotation needs the bbolt ledger: a CometBFT genesis registry fixes each cluster's CH key")

// ErrPprofWithoutMetrics is returned by Start for a Config with Pprof and no
// Metrics address: the profiles are served on the metrics address only.
var ErrPprofWithoutMetrics = errors.New("pprof is served on the metrics address: set one (--metrics 127.0.0.1:9464)")
