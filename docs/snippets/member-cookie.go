// Package membercookie signs nginx-loyalty member cookies at login and
// verifies them where needed.  Go standard library only: copy this file
// into the shop's code.
//
// The value is ID~EXPIRES~KID~MAC, MAC the unpadded base64url of
// HMAC-SHA256(secret, "member~ID~EXPIRES~KID"): docs/member-cookie.md.
//
//	text, _ := os.ReadFile("/etc/nginx/loyalty.keys")
//	keys, err := membercookie.ParseKeys(string(text))
//	value, err := membercookie.Sign(memberID, 30*86400, keys, time.Now())
//	http.SetCookie(w, &http.Cookie{Name: "loyalty_member", Value: value,
//		Path: "/", MaxAge: 30 * 86400, Secure: true, HttpOnly: true,
//		SameSite: http.SameSiteLaxMode})
//	c, err := r.Cookie("loyalty_member") // then, when err == nil:
//	memberID, err := membercookie.Verify(c.Value, keys, time.Now())
package membercookie

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Key is a line of the keys file: its id and its secret's bytes.
type Key struct {
	ID     string
	Secret []byte
}

var (
	idRE     = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	kidRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,16}$`)
	secretRE = regexp.MustCompile(`^(?:[0-9A-Fa-f]{2}){32,128}$`)
	cookieRE = regexp.MustCompile(`^([A-Za-z0-9_.-]{1,64})~` +
		`(0|[1-9][0-9]{0,11})~([A-Za-z0-9_-]{1,16})~[A-Za-z0-9_-]{43}$`)
	fieldsRE = regexp.MustCompile(`[ \t]+`)

	// ErrInvalid is a forged, damaged or unknown-key cookie; ErrExpired
	// a genuine one past its expiry.
	ErrInvalid = errors.New("member cookie: invalid")
	ErrExpired = errors.New("member cookie: expired")
)

const (
	expiresMax = 999999999999 // 12 digits
	cookieMax  = 138          // 64 + 1 + 12 + 1 + 16 + 1 + 43
)

// ParseKeys reads the keys file nginx reads (loyalty_keys): "KID
// SECRET_HEX" lines, "#" comments.  The first key signs.
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimRight(strings.TrimLeft(raw, " \t"), " \t\r")
		if line == "" || line[0] == '#' {
			continue
		}
		f := fieldsRE.Split(line, -1)
		if len(f) != 2 || !kidRE.MatchString(f[0]) ||
			!secretRE.MatchString(f[1]) || hasKey(keys, f[0]) ||
			len(keys) == 16 {
			return nil, fmt.Errorf("keys line %d: want \"KID SECRET_HEX\", "+
				"a new KID of [A-Za-z0-9_-], 32-128 bytes of hex", i+1)
		}
		secret, _ := hex.DecodeString(f[1])
		keys = append(keys, Key{f[0], secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("keys: none")
	}
	return keys, nil
}

func hasKey(keys []Key, kid string) bool {
	for _, k := range keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// the "member~" in front keeps other values signed with the same keys
// from passing for a member cookie
func mac(secret []byte, payload string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("member~" + payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Sign returns the cookie value for member, valid for ttl seconds from
// now; keys[0] signs.  The member id is the shop's opaque id, never an
// email address.
func Sign(member string, ttl int64, keys []Key, now time.Time) (string,
	error) {
	if !idRE.MatchString(member) {
		return "", errors.New("member id: 1-64 characters of [A-Za-z0-9_.-]")
	}
	expires := now.Unix() + ttl
	if len(keys) == 0 || expires < 0 || expires > expiresMax {
		return "", errors.New("no key, or expiry out of range")
	}
	payload := member + "~" + strconv.FormatInt(expires, 10) + "~" +
		keys[0].ID
	return payload + "~" + mac(keys[0].Secret, payload), nil
}

// Verify returns the member id of a genuine cookie value not yet expired,
// valid through its EXPIRES second as nginx counts; else ErrInvalid or
// ErrExpired.
func Verify(cookie string, keys []Key, now time.Time) (string, error) {
	if len(cookie) > cookieMax {
		return "", ErrInvalid
	}
	m := cookieRE.FindStringSubmatch(cookie)
	if m == nil {
		return "", ErrInvalid
	}
	for _, k := range keys {
		if k.ID != m[3] {
			continue
		}
		// compare the text, in constant time: only the one encoding passes
		want := mac(k.Secret, cookie[:len(cookie)-44])
		if !hmac.Equal([]byte(cookie[len(cookie)-43:]), []byte(want)) {
			return "", ErrInvalid
		}
		expires, _ := strconv.ParseInt(m[2], 10, 64)
		if expires < now.Unix() {
			return "", ErrExpired
		}
		return m[1], nil
	}
	return "", ErrInvalid
}
