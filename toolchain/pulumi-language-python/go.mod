// Wrapper module for the Python language host. Releases after v3.79 keep it in
// its own module, which pulumi never tags and the Go proxy here does not serve;
// sdk/v3 up to v3.79 carried it as python/cmd/pulumi-language-python.
// bootstrap.sh adds the require at PULUMI_LANGUAGE_PYTHON_VERSION (versions.env).
module pulumi-dbcreds/toolchain/pulumi-language-python

go 1.25

// Repeated from sdk/v3's own go.mod.
replace golang.org/x/text => golang.org/x/text v0.3.6
