package main

import (
	"pbx-agent/agent/cdr"
	"pbx-agent/agent/config"
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
	}
}
