# broker/: diffq-broker, the durable job queue (issue: the cluster queue).
