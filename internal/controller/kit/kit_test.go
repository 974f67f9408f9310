package kit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1 "k8s.io/api/core/v1"
)

func TestObjectKeyRoundTrips(t *testing.T) {
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "weather"}}
	k := ObjectKey(obj)
	if k != "shop/weather" {
		t.Fatalf("ObjectKey = %q", k)
	}
	if got, ok := ParseObjectKey(k); !ok || got != (types.NamespacedName{Namespace: "shop", Name: "weather"}) {
		t.Fatalf("ParseObjectKey(%q) = %v, %v", k, got, ok)
	}
	for _, bad := range []string{"", "shop", "/weather", "shop/", "a/b/c"} {
		if _, ok := ParseObjectKey(bad); ok {
			t.Errorf("ParseObjectKey(%q) accepted", bad)
		}
	}
}

func TestClipKeepsUTF8AndTheLimit(t *testing.T) {
	if Clip("short") != "short" {
		t.Fatal("a short message was changed")
	}
	long := strings.Repeat("é", MaxMessage) // 2 bytes each
	c := Clip(long)
	if len(c) > MaxMessage || !utf8.ValidString(c) || !strings.HasSuffix(c, "…") {
		t.Fatalf("Clip: %d bytes, valid %v", len(c), utf8.ValidString(c))
	}
}

func TestChildNameFitsAServiceAndStaysDistinct(t *testing.T) {
	if ChildName("weather", "-gateway") != "weather-gateway" {
		t.Fatal("a short name was changed")
	}
	long := strings.Repeat("a", 70)
	a, b := ChildName(long, "-gateway"), ChildName(long+"b", "-gateway")
	if len(a) > 63 || !strings.HasSuffix(a, "-gateway") || a == b {
		t.Fatalf("ChildName: %q, %q", a, b)
	}
}

func TestProblemClasses(t *testing.T) {
	st := Stall("SecretNotFound", "Secret %q not found", "db")
	wrapped := fmt.Errorf("reading: %w", st)
	if got, ok := AsStalled(wrapped); !ok || got.Reason != "SecretNotFound" || got.Message != `Secret "db" not found` {
		t.Fatalf("AsStalled = %+v, %v", got, ok)
	}
	if IsAPIError(wrapped) || IsAPIError(nil) || IsAPIError(errors.New("database down")) {
		t.Fatal("not an API error, yet classified as one")
	}
	if !IsAPIError(fmt.Errorf("patching: %w", apierrors.NewConflict(corev1.Resource("secrets"), "db", errors.New("changed")))) {
		t.Fatal("a conflict is an API error")
	}
}
