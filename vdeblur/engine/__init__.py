"""The restoration engine: threads and bounded queues, windows and recurrent state, batching,
padding, precision and device -- done once here for every method."""
