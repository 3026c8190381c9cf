"""dli-exporter: Prometheus exporter for Flink jobs on Huawei Cloud Data Lake Insight (DLI)."""

__version__ = "0.1.0"
