// Runs docs/snippets/member-cookie.go for t/cookie-snippets.t, which
// builds it beside the snippet as the module "loyaltytest":
//
//	driver vectors FILE       one JSON line per vector, see
//	                          t/cookie-snippets.t
//	driver sign KEYS ID TTL   a cookie value, signed now
//	driver verify KEYS VALUE  the member id, or "REFUSED"
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	mc "loyaltytest/membercookie"
)

type vectorsDoc struct {
	KeysFile string `json:"keys_file"`
	Valid    []struct {
		Member, Kid, Cookie string
		Now, TTL, Expires   int64
	}
	Invalid []struct {
		Cookie string
		Now    int64
	}
	Unsignable []struct {
		Member   string
		Now, TTL int64
	}
	BadKeysFiles []struct{ Text string } `json:"bad_keys_files"`
}

func out(obj map[string]interface{}) {
	b, _ := json.Marshal(obj)
	fmt.Println(string(b))
}

// the member id, or nil for JSON's null
func verify(cookie string, keys []mc.Key, now int64) interface{} {
	id, err := mc.Verify(cookie, keys, time.Unix(now, 0))
	if err != nil {
		return nil
	}
	return id
}

func sign(member string, ttl int64, keys []mc.Key, now int64) interface{} {
	value, err := mc.Sign(member, ttl, keys, time.Unix(now, 0))
	if err != nil {
		return nil
	}
	return value
}

func vectors(file string) {
	var doc vectorsDoc
	text, err := os.ReadFile(file)
	if err == nil {
		err = json.Unmarshal(text, &doc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keys, _ := mc.ParseKeys(doc.KeysFile)
	parsed := [][]string{}
	for _, k := range keys {
		parsed = append(parsed, []string{k.ID, hex.EncodeToString(k.Secret)})
	}
	out(map[string]interface{}{"keys": parsed})
	for i, v := range doc.Valid {
		var signer []mc.Key
		for _, k := range keys {
			if k.ID == v.Kid {
				signer = append(signer, k)
			}
		}
		out(map[string]interface{}{"valid": i,
			"signed":    sign(v.Member, v.TTL, signer, v.Now),
			"at_now":    verify(v.Cookie, keys, v.Now),
			"at_expiry": verify(v.Cookie, keys, v.Expires),
			"after":     verify(v.Cookie, keys, v.Expires+1)})
	}
	for i, v := range doc.Invalid {
		out(map[string]interface{}{"invalid": i,
			"verified": verify(v.Cookie, keys, v.Now)})
	}
	for i, v := range doc.Unsignable {
		out(map[string]interface{}{"unsignable": i,
			"signed": sign(v.Member, v.TTL, keys, v.Now)})
	}
	for i, v := range doc.BadKeysFiles {
		_, err := mc.ParseKeys(v.Text)
		out(map[string]interface{}{"bad_keys": i, "parsed": err == nil})
	}
}

func keysOf(file string) []mc.Key {
	text, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keys, err := mc.ParseKeys(string(text))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return keys
}

func main() {
	switch os.Args[1] {
	case "vectors":
		vectors(os.Args[2])
	case "sign":
		ttl, _ := strconv.ParseInt(os.Args[4], 10, 64)
		value, err := mc.Sign(os.Args[3], ttl, keysOf(os.Args[2]), time.Now())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(value)
	default:
		id, err := mc.Verify(os.Args[3], keysOf(os.Args[2]), time.Now())
		if err != nil {
			id = "REFUSED"
		}
		fmt.Println(id)
	}
}
