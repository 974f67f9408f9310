package allowlist

import "testing"

func TestImages(t *testing.T) {
	l := Images{"ghcr.io/acme/gateway", "registry.internal/team/"}
	for image, want := range map[string]bool{
		"ghcr.io/acme/gateway":                   true,
		"ghcr.io/acme/gateway:1.2":               true,
		"ghcr.io/acme/gateway@sha256:abc":        true,
		"ghcr.io/acme/gateway-dev:1":             false, // another repository with the same prefix
		"ghcr.io/acme/gatewayx":                  false,
		"ghcr.io/acme/gateway/../../evil/x:1":    false,
		"registry.internal/team/gw:2":            true,
		"registry.internal/team/sub/gw@sha256:a": true,
		"registry.internal/team/../other/gw:1":   false,
		"registry.internal/teamevil/gw:1":        false,
		"registry.internal/team/":                false, // the entry itself names no image
		"docker.io/library/busybox":              false,
		"":                                       false,
	} {
		if got := l.Allows(image); got != want {
			t.Errorf("Allows(%q) = %v, want %v", image, got, want)
		}
	}
	if (Images{}).Allows("ghcr.io/acme/gateway") {
		t.Error("an empty image list allowed an image")
	}
}

func TestOrigins(t *testing.T) {
	l, err := ParseOrigins([]string{"https://web3.okx.com", "https://*.example.com", "http://geth.chains.svc:8545", " "})
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]bool{
		"https://web3.okx.com":                     true,
		"https://web3.okx.com/api/v6/x402":         true,
		"https://WEB3.OKX.COM:443/x":               true,
		"https://web3.okx.com.":                    true,
		"https://web3.okx.com:8443":                true, // no port in the entry: any port
		"http://web3.okx.com":                      false,
		"https://web3.okx.com.evil.io":             false,
		"https://evil.io/?u=https://web3.okx.com":  false,
		"https://web3.okx.com@evil.io":             false,
		"https://rpc.example.com":                  true,
		"https://a.b.example.com":                  true,
		"https://example.com":                      false, // *. is subdomains only
		"https://evilexample.com":                  false,
		"http://geth.chains.svc:8545":              true,
		"http://geth.chains.svc":                   false,
		"http://geth.chains.svc:8546":              false,
		"http://169.254.169.254/latest/meta-data/": false,
		"ws://geth.chains.svc:8545":                false,
		"not a url":                                false,
		"":                                         false,
	} {
		if got := l.Allows(raw); got != want {
			t.Errorf("Allows(%q) = %v, want %v", raw, got, want)
		}
	}
	if !(Origins{}).Allows("http://169.254.169.254/") {
		t.Error("an empty origin list must allow every URL (the default)")
	}
	for _, bad := range []string{"web3.okx.com", "https://", "https://a.*.com", "https://x.com/path", "https://u:p@x.com", "https://*."} {
		if _, err := ParseOrigins([]string{bad}); err == nil {
			t.Errorf("ParseOrigins(%q) accepted", bad)
		}
	}
	if s := l.String(); s != "https://web3.okx.com,https://*.example.com,http://geth.chains.svc:8545" {
		t.Errorf("String() = %s", s)
	}
}
