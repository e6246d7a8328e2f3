// Package testkit holds what Lanyard's tests share: the test backends
// (PostgreSQL and Redis, from the environment the test command sets up), a
// controllable clock, a full server on loopback and scripted clients.
package testkit
