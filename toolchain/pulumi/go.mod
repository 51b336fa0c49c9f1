// Wrapper module for the Pulumi CLI (github.com/pulumi/pulumi/pkg/v3, main
// package cmd/pulumi). `go install pkg@version` is refused because pkg/v3's
// go.mod has replace directives; the non-local ones are repeated here.
// bootstrap.sh adds the requires at PULUMI_CLI_VERSION (versions.env).
module pulumi-dbcreds/toolchain/pulumi

go 1.25

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
