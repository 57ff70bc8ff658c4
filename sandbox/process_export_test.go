package sandbox

// ProcessID exposes the lease records' process identity to the tests.
var ProcessID = processID
