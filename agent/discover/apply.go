package discover

import (
	"log/slog"
	"strconv"
	"strings"

	"pbx-agent/agent/config"
)

// sourcePrefix marks config.Source entries written by Apply.
const sourcePrefix = "discovered: "

// Explicit reports whether the operator set key (file or flag), as opposed
// to a default or a discovered value.
func Explicit(cfg *config.Config, key string) bool {
	s, ok := cfg.Source[key]
	return ok && s != "" && !strings.HasPrefix(s, sourcePrefix)
}

// OptionsFor returns discovery options honouring what cfg sets explicitly
// (asterisk_manager_conf, ami_user).
func OptionsFor(cfg *config.Config) Options {
	var o Options
	if Explicit(cfg, "asterisk_manager_conf") {
		o.ManagerConf = cfg.AsteriskManagerConf
	}
	if Explicit(cfg, "ami_user") {
		o.AMIUser = cfg.AMIUser
	}
	return o
}

// Run discovers with OptionsFor(cfg) and applies the result to cfg. The
// error lists discovery problems; cfg is usable either way (the daemon
// should log the error as a warning and go on).
func Run(cfg *config.Config, logger *slog.Logger) (*Result, error) {
	res, err := Discover(OptionsFor(cfg))
	Apply(cfg, res, logger)
	return res, err
}

// Apply copies discovered values into cfg for every key the operator left
// unset, records "discovered: <source>" in cfg.Source, and logs each value
// once: applied ones as "discovered", overridden ones as "configured value
// kept". It returns the values applied.
func Apply(cfg *config.Config, res *Result, logger *slog.Logger) []Value {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "discover")
	var applied []Value
	for _, v := range res.Values {
		set, current := setter(cfg, res, v.Key)
		if set == nil {
			logger.Info("discovered", "key", v.Key, "value", v.Value, "source", v.Source)
			continue
		}
		if Explicit(cfg, v.Key) {
			logger.Info("configured value kept", "key", v.Key, "configured", current, "discovered", v.Value, "source", v.Source)
			continue
		}
		set()
		cfg.Source[v.Key] = sourcePrefix + v.Source
		applied = append(applied, v)
		logger.Info("discovered", "key", v.Key, "value", v.Value, "source", v.Source, "applied", true)
	}
	for _, n := range res.Notes {
		logger.Info("discovery note", "note", n)
	}
	return applied
}

// setter returns how to apply key and the config's current value rendered
// as Value would be; nil for keys that are not config keys.
func setter(cfg *config.Config, res *Result, key string) (func(), string) {
	switch key {
	case "asterisk_manager_conf":
		return func() { cfg.AsteriskManagerConf = res.ManagerConf }, cfg.AsteriskManagerConf
	case "ami_host":
		return func() { cfg.AMIHost = res.AMIHost }, cfg.AMIHost
	case "ami_port":
		return func() { cfg.AMIPort = res.AMIPort }, strconv.Itoa(cfg.AMIPort)
	case "ami_user":
		return func() { cfg.AMIUser = res.AMIUser }, cfg.AMIUser
	case "ami_secret":
		cur := ""
		if cfg.AMISecret != "" {
			cur = "(set)"
		}
		return func() { cfg.AMISecret = res.AMISecret }, cur
	case "sipport":
		return func() { cfg.SIPPorts = append([]config.PortRange(nil), res.SIPPorts...) }, FormatPorts(cfg.SIPPorts)
	case "interface":
		return func() { cfg.Interface = append([]string(nil), res.Interfaces...) }, strings.Join(cfg.Interface, ",")
	}
	return nil, ""
}
