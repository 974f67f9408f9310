package gateway

import (
	"testing"

	"github.com/insforge/integrations-operator/internal/gateway/config"
)

func TestRouteTablePicksTheMostSpecificRoute(t *testing.T) {
	c := config.Config{Routes: []config.Route{
		{Path: "/a/*", Price: "1"},
		{Path: "/a/b/*", Price: "2"},
		{Path: "/a/b/c", Price: "3"},
		{Path: "/a/b/c", Method: "POST", Price: "4"},
		{Path: "/x/*", Method: "GET", Price: "5"},
	}}
	tbl := newRouteTable(c)
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/a/b/c", "3"},
		{"POST", "/a/b/c", "4"},
		{"GET", "/a/b/d", "2"},
		{"GET", "/a/z", "1"},
		{"GET", "/a", "1"},
		{"GET", "/x/1", "5"},
		{"POST", "/x/1", ""},
		{"GET", "/ab", ""},
		{"GET", "/", ""},
	} {
		r := tbl.match(tc.method, tc.path)
		got := ""
		if r != nil {
			got = r.cfg.Price
		}
		if got != tc.want {
			t.Errorf("%s %s → route %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
