// Package config loads and validates listsync's YAML configuration: the
// state store, the warehouses, the Marketo instance and the syncs.
//
// Loading is strict and explicit, in three steps that all run at start:
//
//  1. [Load] parses the YAML, refuses unknown keys (naming their line),
//     expands ${ENV_VAR} references through the lookup function it is
//     handed (it never reads the environment itself) and fills every
//     default with [Config.WithDefaults].
//  2. [Config.Validate] checks everything that can be checked without a
//     network: cron expressions, model files (which must stay inside the
//     models directory), warehouse references and their required settings,
//     list settings and the Marketo budget. Every problem names the key and,
//     where it can, the line.
//  3. The command layer maps the result onto each package's own options;
//     no package below the command imports this one.
//
// Secrets (the Marketo client secret, DSNs, passwords and private keys) are
// held in [Secret], whose every rendering (fmt, JSON, YAML, zap, slog) is
// redacted.
package config
