"""evse_hal: the hardware abstraction layer of evse-agent (interfaces and backends)."""
