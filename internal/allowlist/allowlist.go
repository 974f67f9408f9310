// Package allowlist holds the operator-level limits on what a resource editor may point the
// operator and its gateways at: container images and the origins of URLs they dial.
package allowlist

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Images are the image references a PaymentRoute may run its gateway with. An entry ending in
// "/" allows every image under that path ("ghcr.io/acme/"); any other entry allows that one
// repository with any tag or digest ("ghcr.io/acme/gateway" allows "ghcr.io/acme/gateway:1.2"
// and "ghcr.io/acme/gateway@sha256:…", not "ghcr.io/acme/gateway-dev"). The empty list allows
// nothing.
type Images []string

// Allows reports whether image matches an entry.
func (l Images) Allows(image string) bool {
	for _, e := range l {
		if e == "" {
			continue
		}
		if image == e && !strings.HasSuffix(e, "/") {
			return true
		}
		rest, ok := strings.CutPrefix(image, e)
		if !ok || rest == "" {
			continue
		}
		if strings.HasSuffix(e, "/") {
			// Not past a parent reference: "ghcr.io/acme/../x" is not under ghcr.io/acme/.
			if !strings.Contains(rest, "..") {
				return true
			}
			continue
		}
		if rest[0] == ':' || rest[0] == '@' {
			return true
		}
	}
	return false
}

// Origin is one allowed origin: a scheme and a host, optionally "*." plus a domain (any
// subdomain, not the domain itself), optionally a port (else any port).
type Origin struct {
	Scheme, Host, Port string
	wildcard           bool
}

// Origins are the origins URLs may have; empty allows every URL.
type Origins []Origin

// ParseOrigins parses entries like "https://web3.okx.com", "https://*.example.com" or
// "http://geth.chains.svc:8545".
func ParseOrigins(entries []string) (Origins, error) {
	var out Origins
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("allowed origin %q: want scheme://host[:port], e.g. https://*.example.com", e)
		}
		o := Origin{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Hostname()), Port: u.Port()}
		if h, ok := strings.CutPrefix(o.Host, "*."); ok {
			o.Host, o.wildcard = h, true
		}
		if o.Host == "" || strings.Contains(o.Host, "*") {
			return nil, fmt.Errorf("allowed origin %q: a wildcard may only be a leading *.", e)
		}
		out = append(out, o)
	}
	return out, nil
}

// Allows reports whether raw is an absolute URL whose origin matches an entry, or the list is
// empty.
func (l Origins) Allows(raw string) bool {
	if len(l) == 0 {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	for _, o := range l {
		if o.Scheme != scheme {
			continue
		}
		if o.Port != "" && o.Port != port {
			continue
		}
		if o.wildcard {
			if strings.HasSuffix(host, "."+o.Host) && net.ParseIP(host) == nil {
				return true
			}
			continue
		}
		if host == o.Host {
			return true
		}
	}
	return false
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// String lists the entries as given to the flag.
func (l Origins) String() string {
	parts := make([]string, len(l))
	for i, o := range l {
		h := o.Host
		if o.wildcard {
			h = "*." + h
		}
		if o.Port != "" {
			h = net.JoinHostPort(h, o.Port)
		}
		parts[i] = o.Scheme + "://" + h
	}
	return strings.Join(parts, ",")
}
