package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"
)

func TestHandle(t *testing.T) {
	g := Greeter{Version: "7"}
	cases := []struct {
		name string
		req  Request
		want Response
	}{
		{"default language", Request{Name: "Ada"}, Response{Message: "Hello, Ada!", Language: "en", Version: "7"}},
		{"french", Request{Name: "Ada", Language: "fr"}, Response{Message: "Bonjour, Ada !", Language: "fr", Version: "7"}},
		{"language case and spaces", Request{Name: "  Grace ", Language: " ES "}, Response{Message: "¡Hola, Grace!", Language: "es", Version: "7"}},
		{"longest name", Request{Name: strings.Repeat("é", MaxNameLength)}, Response{Message: "Hello, " + strings.Repeat("é", MaxNameLength) + "!", Language: "en", Version: "7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := g.Handle(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestHandleRejects(t *testing.T) {
	cases := []struct {
		name      string
		req       Request
		wantField string
	}{
		{"no name", Request{}, "name"},
		{"blank name", Request{Name: " \t "}, "name"},
		{"too long", Request{Name: strings.Repeat("a", MaxNameLength+1)}, "name"},
		{"control character", Request{Name: "Ada\x00Lovelace"}, "name"},
		{"invalid utf-8", Request{Name: "Ada\xff"}, "name"},
		{"unknown language", Request{Name: "Ada", Language: "tlh"}, "language"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Greeter{}.Handle(context.Background(), c.req)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if ve.Field != c.wantField {
				t.Fatalf("field = %q, want %q (%v)", ve.Field, c.wantField, err)
			}
		})
	}
}

// Through aws-lambda-go's own handler: the JSON a caller sends and receives.
func TestLambdaHandlerJSON(t *testing.T) {
	h := lambda.NewHandler(Greeter{Version: "$LATEST"}.Handle)
	out, err := h.Invoke(context.Background(), []byte(`{"name":"Linus","language":"nl"}`))
	if err != nil {
		t.Fatal(err)
	}
	var resp map[string]string
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	want := map[string]string{"message": "Hallo, Linus!", "language": "nl", "version": "$LATEST"}
	for k, v := range want {
		if resp[k] != v {
			t.Errorf("%s = %q, want %q (whole: %s)", k, resp[k], v, out)
		}
	}

	if _, err := h.Invoke(context.Background(), []byte(`{"name":""}`)); err == nil || !strings.Contains(err.Error(), "name: required") {
		t.Errorf("empty name: err = %v", err)
	}
	if _, err := h.Invoke(context.Background(), []byte(`not json`)); err == nil {
		t.Error("malformed event accepted")
	}
}
