package runbook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Parameter types for network targets. The bot parses the value, resolves
// the host itself and refuses loopback, link-local (cloud metadata at
// 169.254.169.254) and private addresses unless the parameter's
// allow_addresses lists them: when the request is made, and again just
// before the run, after DNS resolution, so a name that later resolves
// elsewhere (DNS rebinding) is caught. Steps can pin the checked address
// with the derived placeholders (see targetSuffixes).
const (
	TypeURL  ParamType = "url"  // http:// or https:// URL, no user info
	TypeHost ParamType = "host" // DNS name or IP address
)

// Address classes allow_addresses may list.
const (
	AllowLoopback  = "loopback"   // 127.0.0.0/8, ::1, 0.0.0.0, ::
	AllowLinkLocal = "link_local" // 169.254.0.0/16 (cloud metadata), fe80::/10
	AllowPrivate   = "private"    // 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7
)

var knownAllows = []string{AllowLoopback, AllowLinkLocal, AllowPrivate}

// classReserved marks addresses no runbook may target (multicast,
// broadcast, reserved ranges).
const classReserved = "reserved"

// targetSuffixes are the derived placeholders of url and host parameters,
// filled with the address the bot checked: {{url.host}}, {{url.port}},
// {{url.address}} (IPv6 in brackets) and {{url.resolve}}
// ("host:port:address", for curl's --resolve, so curl connects to exactly
// the checked address); a host parameter has {{host.address}}.
var targetSuffixes = map[ParamType][]string{
	TypeURL:  {"host", "port", "address", "resolve"},
	TypeHost: {"address"},
}

// ResolveFunc returns the addresses of a host name. The engine uses
// net.DefaultResolver unless Config.Resolve is set.
type ResolveFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

var dnsName = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$`)

// target is a parsed url or host value.
type target struct {
	host    string     // without brackets
	port    string     // url only: explicit or the scheme's
	literal netip.Addr // valid when host is an IP address
}

// parseTarget checks a url or host value's shape.
func parseTarget(t ParamType, raw string) (target, error) {
	host := raw
	var tg target
	if t == TypeURL {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return target{}, errors.New("is not a URL")
		case u.Scheme != "http" && u.Scheme != "https":
			return target{}, errors.New("must start with http:// or https://")
		case u.User != nil:
			return target{}, errors.New("must not contain a user name or password")
		case u.Host == "" || u.Opaque != "":
			return target{}, errors.New("must name a host, like https://example.com/path")
		}
		// Brackets and braces are curl's globbing (the shipped runbook
		// turns it off; others may not); the rest are never valid unencoded.
		_, afterScheme, _ := strings.Cut(raw, "://")
		if rest := strings.TrimPrefix(afterScheme, u.Host); strings.ContainsAny(rest, "[]{}\\^`|\"<>") {
			return target{}, errors.New("must not contain [ ] { } \\ ^ | \" < > or a backtick after the host (write them as %XX)")
		}
		host = u.Hostname()
		tg.port = u.Port()
		if tg.port == "" {
			tg.port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		if n, err := strconv.Atoi(tg.port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != tg.port {
			return target{}, errors.New("has an invalid port")
		}
	}
	tg.host = host
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return target{}, errors.New("must not use an IPv6 zone")
		}
		tg.literal = a
		return tg, nil
	}
	if !dnsName.MatchString(host) || len(host) > 253 {
		return target{}, errors.New("must be a DNS name (letters, digits, hyphens and dots) or an IP address")
	}
	return tg, nil
}

var privatePrefixes = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT, often internal
	netip.MustParsePrefix("fc00::/7"),
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	reserved4 = netip.MustParsePrefix("240.0.0.0/4")
)

// addrClass says which class an address is in: "" for a public address,
// otherwise AllowLoopback, AllowLinkLocal, AllowPrivate or classReserved.
// IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged as IPv4.
func addrClass(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() && (nat64.Contains(a) || sixToFour.Contains(a)) {
		b := a.As16()
		var v4 [4]byte
		if nat64.Contains(a) {
			copy(v4[:], b[12:16])
		} else {
			copy(v4[:], b[2:6])
		}
		a = netip.AddrFrom4(v4)
	}
	switch {
	case a.IsLoopback(), a.IsUnspecified(), a.Is4() && thisNet.Contains(a):
		return AllowLoopback
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return AllowLinkLocal
	case a.IsMulticast(), a.Is4() && reserved4.Contains(a):
		return classReserved
	}
	for _, p := range privatePrefixes {
		if p.Contains(a) {
			return AllowPrivate
		}
	}
	return ""
}

func describeClass(c string) string {
	switch c {
	case AllowLoopback:
		return "a loopback address (this machine)"
	case AllowLinkLocal:
		return "a link-local address (such as the cloud metadata service)"
	case AllowPrivate:
		return "a private-network address"
	}
	return "a reserved or multicast address"
}

// checkAddr refuses an address p does not allow.
func (p *Param) checkAddr(a netip.Addr) error {
	c := addrClass(a)
	if c == "" || (c != classReserved && slices.Contains(p.AllowAddresses, c)) {
		return nil
	}
	how := ""
	if c != classReserved {
		how = " (a runbook allows it with allow_addresses: [" + c + "] on the parameter)"
	}
	return fmt.Errorf("points to %s, %s, which this runbook does not allow%s", a.Unmap(), describeClass(c), how)
}

// checkTarget is the part of a url or host check that needs no DNS: the
// shape, and the address when the value is one (or "localhost").
func (p *Param) checkTarget(raw string) error {
	tg, err := parseTarget(p.Type, raw)
	if err != nil {
		return err
	}
	if tg.literal.IsValid() {
		return p.checkAddr(tg.literal)
	}
	if h := strings.ToLower(strings.TrimSuffix(tg.host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return p.checkAddr(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	}
	return nil
}

// resolveTargets resolves the host of every url and host parameter,
// refuses any address the runbook does not allow (all of them are
// checked: the program might use any), and returns the derived
// placeholders pinned to the first address.
func (e *Engine) resolveTargets(ctx context.Context, rb *Runbook, params Params) (map[string]string, *UserError) {
	out := map[string]string{}
	for _, v := range params {
		p, ok := rb.Param(v.Name)
		if !ok || (p.Type != TypeURL && p.Type != TypeHost) {
			continue
		}
		tg, err := parseTarget(p.Type, v.Value)
		if err != nil { // Bind checked it
			return nil, userError(KindInvalid, "Cannot run "+rb.ID+": "+p.Name+" "+err.Error()+". Nothing was run.")
		}
		addrs := []netip.Addr{tg.literal}
		if !tg.literal.IsValid() {
			rctx, cancel := context.WithTimeout(ctx, e.cfg.LookupTimeout)
			addrs, err = e.cfg.Resolve(rctx, tg.host)
			cancel()
			if err == nil && len(addrs) == 0 {
				err = errors.New("no addresses")
			}
			if err != nil {
				return nil, userError(KindInvalid, "Cannot run "+rb.ID+": the host "+echo(tg.host)+" of "+p.Name+" does not resolve ("+
					EscapeSlack(resolveError(err))+"). Nothing was run.")
			}
		}
		for _, a := range addrs {
			if err := p.checkAddr(a); err != nil {
				return nil, userError(KindDenied, "Cannot run "+rb.ID+": "+p.Name+" "+echo(tg.host)+" "+EscapeSlack(err.Error())+". Nothing was run.")
			}
		}
		addr := addrs[0].Unmap().String()
		host := tg.host
		if addrs[0].Unmap().Is6() {
			addr = "[" + addr + "]"
		}
		if tg.literal.Is6() {
			host = "[" + host + "]"
		}
		out[v.Name+".address"] = addr
		if p.Type == TypeURL {
			out[v.Name+".host"] = host
			out[v.Name+".port"] = tg.port
			out[v.Name+".resolve"] = host + ":" + tg.port + ":" + addr
		}
	}
	return out, nil
}

func resolveError(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host"
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		return "DNS lookup timed out"
	}
	return "DNS lookup failed"
}
