package main

import (
	"pbx-agent/agent/cdr"
	"pbx-agent/agent/config"
	"pbx-agent/sniffer/call"
)

// cdrOptions maps the configuration onto the CDR writer's own options (the
// writer does not read agent/config; the sensors row is agent/sensors').
func cdrOptions(cfg *config.Config) cdr.Options {
	return cdr.Options{
		DSN:                         cfg.MySQLDSN(),
		IDSensor:                    cfg.IDSensor,
		QueueDir:                    cfg.QueueDir(),
		QueueSize:                   cfg.CDRQueueSize,
		BatchSize:                   cfg.CDRBatchSize,
		FlushInterval:               cfg.CDRFlushInterval,
		QueueMaxBytes:               cfg.CDRQueueMaxBytes,
		Partition:                   cfg.CDRPartition,
		RawUA:                       !cfg.CDRUANormalisation,
		MOSMinAll:                   !cfg.MOSMinF2,
		OnlyAnswered:                cfg.CDROnlyAnswered,
		OnlyRTP:                     cfg.CDROnlyRTP,
		ResponseTimeFromFirstInvite: cfg.ResponseTimeFromFirstInvite,
		IPv6:                        cfg.IPv6,
		Clean: cdr.CleanOptions{
			CDR:              cfg.CleanDays("cdr"),
			EnergyLevels:     cfg.CleanDays("cdr_rtp_energylevels"),
			RegisterState:    cfg.CleanDays("register_state"),
			RegisterFailed:   cfg.CleanDays("register_failed"),
			RegisterTimeInfo: cfg.CleanDays("register_time_info"),
			SIPMsg:           cfg.CleanDays("sip_msg"),
			RTPStat:          cfg.CleanDays("rtp_stat"),
			MaxBytes:         int64(cfg.CleanDatabaseSizeMB) << 20,
			Hours:            &cdr.HourRange{From: cfg.PartitionOpsFrom, To: cfg.PartitionOpsTo},
		},
		NoPartitionDrop: cfg.DisablePartitionOps || cfg.DisablePartitionDrop,
		Location:        cfg.TimeLocation(),
	}
}

// registerRules maps the sip-register-* options onto the call table's.
func registerRules(cfg *config.Config) call.RegisterRules {
	r := call.RegisterRules{
		Timeout:         cfg.RegisterTimeout,
		MaxRegisters:    cfg.RegisterMaxRegisters,
		MaxMessages:     cfg.RegisterMaxMessages,
		StateTimeout:    cfg.RegisterStateTimeout,
		NoTimeoutFailed: cfg.RegisterTimeoutNoFailed,
	}
	if r.StateTimeout == 0 {
		r.StateTimeout = -1 // sip-register-state-timeout = 0: never written again
	}
	return r
}
