// Package msg is Skyfleet's text messaging: messages signed by the sender's node
// key, end-to-end encrypted to the recipient, carried as store-and-forward bundles
// (services/saf), with delivery receipts.
package msg
