package store

// OneCardPerIssue runs migration 20261205000101 again, for its test.
var OneCardPerIssue = (*DB).oneCardPerIssue
