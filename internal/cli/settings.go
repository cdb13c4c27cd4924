package cli

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/iotguard/iotguard/cluster"
	"github.com/iotguard/iotguard/internal/coapedge"
	"github.com/iotguard/iotguard/internal/settings"
	"github.com/iotguard/iotguard/wire"
)

// serveSettings are the settings of a cluster head. newServeFlags defines
// each once, as a flag; the environment (IOTGUARD_<NAME>) and the config file
// (key <name>) set the same flags (internal/settings). 'serve' and 'config
// print' share them.
type serveSettings struct {
	config     *string
	listen     *string
	dtlsListen *string
	data       *string
	metrics    *string
	pprof      *bool
	metricsWeb *string
	id         idValue
	position   positionValue
	radius     *float64
	memberTTL  *time.Duration
	sessionTTL *time.Duration
	rateLimit  *float64
	maxAssoc   *int
	assocRate  *float64
	joinRate   *float64
	backend    *string
	home       *string
	logFormat  logFormatValue
	logLevel   logLevelValue
	admission  admissionValue
	fleetKeys  listValue
}

// configFlag names the config file. It is read from the command line or
// IOTGUARD_CONFIG, never from the file itself.
const configFlag = "config"

func newServeFlags(name string) (*flag.FlagSet, *serveSettings) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	s := &serveSettings{id: "cluster-1", logFormat: "text", admission: admissionValue(cluster.AdmissionEnrolled)}
	p, _ := cluster.ParsePosition("48.8566,2.3522")
	s.position = positionValue(p)
	s.config = fs.String(configFlag, "", "TOML config `file` (keys named like these flags; also IOTGUARD_CONFIG)")
	s.listen = fs.String("listen", "127.0.0.1:5683", "UDP `address` for CoAP")
	s.dtlsListen = fs.String("dtls-listen", "", "UDP `address` for coaps, DTLS 1.2 with member PSKs (off when empty; 5684 is the usual port)")
	s.data = fs.String("data", "iotguard-data", "data `directory` (ledger, CH key)")
	s.metrics = fs.String("metrics", "", "HTTP `address` for Prometheus /metrics (off when empty)")
	s.pprof = fs.Bool("pprof", false, "also serve net/http/pprof under /debug/pprof/ on the --metrics address (keep it on loopback)")
	s.metricsWeb = fs.String("metrics-web-config", "", "Prometheus web configuration `file` for --metrics: TLS, client certificates, basic auth (bcrypt hashes), as an exporter's --web.config.file (plain HTTP when empty)")
	fs.Var(&s.id, "cluster-id", "cluster `ID`")
	fs.Var(&s.position, "position", "CH position `LAT,LON` in degrees")
	s.radius = fs.Float64("radius", 1000, "cluster radius in `metres` (great-circle distance)")
	s.memberTTL = fs.Duration("member-ttl", cluster.DefaultMemberTTL, "membership lifetime after a join")
	s.sessionTTL = fs.Duration("session-ttl", cluster.DefaultSessionTTL, "session key lifetime")
	s.rateLimit = fs.Float64("rate-limit", coapedge.DefaultRateLimit, "requests per second per source: an IPv4 address or an IPv6 /64; a join counts as 16 (0: off)")
	s.maxAssoc = fs.Int("max-associations", coapedge.DefaultMaxCoAPAssociations, "source endpoints (address:port) held at once, ~5 KiB each (requests to the CH need none: only pings and requests with unknown critical options get one); datagrams of new ones beyond it are dropped (0: no bound)")
	s.assocRate = fs.Float64("association-rate", coapedge.DefaultCoAPAssociationRate, "new source endpoints admitted per second, all sources together (0: no bound)")
	s.joinRate = fs.Float64("join-rate", cluster.DefaultJoinRate, "joins whose signatures are checked per second, all sources together, a source at most 15/16 of it over the sources of the second before; beyond, 5.03 with Max-Age, no check (0: no bound)")
	s.backend = fs.String("ledger", "bolt", "ledger `backend`: bolt (in --data) or cometbft (a CometBFT node in --cometbft-home; bin/iotguard-cometbft)")
	s.home = fs.String("cometbft-home", "", "CometBFT home `directory` (config/, data/) for --ledger cometbft")
	fs.Var(&s.logFormat, "log-format", "log `format`: text or json")
	fs.Var(&s.logLevel, "log-level", "least `level` logged: debug, info, warn or error (default info)")
	fs.Var(&s.admission, "admission", "who may join: `enrolled` (enrolled devices and fleet credentials) or open (anyone; demos)")
	fs.Var(&s.fleetKeys, "fleet-key", "trusted fleet public key `file` (PEM, from 'iotguard fleet pubkey'); repeat, or separate with commas, to trust several")
	return fs, s
}

// load parses args into fs, then fills what they left unset from the
// environment and the config file (settings.Apply), and returns the
// effective settings.
func (s *serveSettings) load(fs *flag.FlagSet, usage string, args []string) ([]settings.Setting, error) {
	if err := Parse(fs, usage, args); err != nil {
		return nil, err
	}
	path := *s.config
	if path == "" {
		path = os.Getenv(settings.EnvName(configFlag))
	}
	eff, err := settings.Apply(fs, path, os.Getenv, configFlag)
	if err != nil {
		return nil, err
	}
	if path != "" {
		eff = append([]settings.Setting{{Name: configFlag, Value: path, Source: settings.Flag, Origin: "--" + configFlag}}, eff...)
		if *s.config == "" {
			eff[0].Source, eff[0].Origin = settings.Env, settings.EnvName(configFlag)
		}
	}
	return eff, nil
}

// logger returns the logger the settings ask for, writing to stderr.
func (s *serveSettings) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.logLevel.Level}
	if s.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// logSettings logs the effective settings, one attribute per setting with
// its source. IMPORTANT: no setting holds a secret (the CH key lives in the
// data directory, never in a flag, variable or config file); a setting that
// ever does must not be logged here.
func logSettings(log *slog.Logger, eff []settings.Setting) {
	attrs := make([]any, 0, len(eff))
	for _, s := range eff {
		attrs = append(attrs, slog.Group(s.Name, "value", s.Value, "from", s.Origin))
	}
	log.Info("effective settings", attrs...)
}

// idValue is a cluster ID flag, checked as the wire checks IDs.
type idValue string

func (v *idValue) String() string { return string(*v) }

func (v *idValue) Set(s string) error {
	if err := wire.CheckID(s); err != nil {
		return err
	}
	*v = idValue(s)
	return nil
}

// positionValue is a LAT,LON flag in degrees.
type positionValue cluster.Position

func (v *positionValue) String() string { return cluster.Position(*v).String() }

func (v *positionValue) Set(s string) error {
	p, err := cluster.ParsePosition(s)
	if err != nil {
		return err
	}
	*v = positionValue(p)
	return nil
}

// logLevelValue is a slog level, named in lower case as the help and the
// docs name it (slog's own names are upper case). The zero value is info.
type logLevelValue struct{ slog.Level }

func (v *logLevelValue) String() string { return strings.ToLower(v.Level.String()) }

func (v *logLevelValue) Set(s string) error {
	if err := v.Level.UnmarshalText([]byte(s)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	return nil
}

// logFormatValue is text or json.
type logFormatValue string

func (v *logFormatValue) String() string { return string(*v) }

func (v *logFormatValue) Set(s string) error {
	if s != "text" && s != "json" {
		return errors.New("want text or json")
	}
	*v = logFormatValue(s)
	return nil
}

// admissionValue is enrolled or open.
type admissionValue cluster.Admission

func (v *admissionValue) String() string { return cluster.Admission(*v).String() }

func (v *admissionValue) Set(s string) error {
	a, err := cluster.ParseAdmission(s)
	if err != nil {
		return err
	}
	*v = admissionValue(a)
	return nil
}

// listValue is a repeatable flag of file names; one value may also name
// several, separated by commas (what the environment and the config file,
// which set a flag once, can say).
type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }

func (v *listValue) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*v = append(*v, f)
		}
	}
	return nil
}
