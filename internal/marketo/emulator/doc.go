// Package emulator is an in-memory Marketo instance.
package emulator
