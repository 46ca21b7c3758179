// Package saf is Skyfleet's store-and-forward engine: bundles kept durably at every
// hop until the next custodian has them (docs/architecture.md §Store and forward).
//
// A packet's path through the node reads bottom up: transport → router (services/mesh)
// → saf → the application the bundle is for (services/msg).
//
//   - bundle.go: the Bundle, its one canonical encoding and its ID (SHA-256 of it).
//   - wire.go: the custody protocol between neighbours (Transfer, CustodyAck) and the
//     data-mule file, all decoded strictly.
//   - store.go: the bbolt custody store: a bundle is ours only once it is committed
//     and fsynced (group commit through bbolt's Batch), with caps, ages and expiry.
//   - engine.go: custody transfer: per-neighbour senders with a window of unacked
//     bundles, the listener that takes custody, routing by the topology, delivery to
//     local applications, retries whenever a link or route appears.
//   - api.go: the node API under /saf/ (control class: master or node token).
//
// A bundle's age (RFC 9171 §4.4.2, "Bundle Age") travels with it and grows by each
// custodian's dwell time measured on the node's own tick clock, which survives
// restarts, so lifetimes behave while the wall clock is still unknown (a Pi boots at
// 1970).
package saf
