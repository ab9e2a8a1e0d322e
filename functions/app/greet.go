package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Request is the event the function accepts: {"name": "Ada", "language": "fr"}.
type Request struct {
	Name     string `json:"name"`
	Language string `json:"language,omitempty"` // en (default), fr, de, es, nl
}

// Response is what the function returns.
type Response struct {
	Message  string `json:"message"`
	Language string `json:"language"`
	// Version is the Lambda function version that answered: after a deploy it shows which
	// build is live behind the alias.
	Version string `json:"version,omitempty"`
}

// ValidationError is returned for a request the function refuses. Lambda reports it with
// errorType "ValidationError", so a caller can tell a bad request from a crash.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// MaxNameLength is the longest name, in characters, that the function greets.
const MaxNameLength = 64

var greetings = map[string]string{
	"en": "Hello, %s!",
	"fr": "Bonjour, %s !",
	"de": "Hallo, %s!",
	"es": "¡Hola, %s!",
	"nl": "Hallo, %s!",
}

// Greeter answers greeting requests.
type Greeter struct {
	Version string
}

// Handle validates the request and greets. It returns *ValidationError for bad input and
// nothing else: the function has no dependencies that can fail.
func (g Greeter) Handle(ctx context.Context, req Request) (Response, error) {
	name, lang, err := validate(req)
	if err != nil {
		slog.WarnContext(ctx, "request rejected", "error", err.Error())
		return Response{}, err
	}
	slog.InfoContext(ctx, "greeted", "language", lang, "nameLength", utf8.RuneCountInString(name))
	return Response{Message: fmt.Sprintf(greetings[lang], name), Language: lang, Version: g.Version}, nil
}

func validate(req Request) (name, lang string, err error) {
	name = strings.TrimSpace(req.Name)
	switch {
	case name == "":
		return "", "", &ValidationError{Field: "name", Reason: "required"}
	case !utf8.ValidString(name):
		return "", "", &ValidationError{Field: "name", Reason: "not valid UTF-8"}
	case utf8.RuneCountInString(name) > MaxNameLength:
		return "", "", &ValidationError{Field: "name", Reason: fmt.Sprintf("longer than %d characters", MaxNameLength)}
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", "", &ValidationError{Field: "name", Reason: "contains control characters"}
	}
	lang = strings.ToLower(strings.TrimSpace(req.Language))
	if lang == "" {
		lang = "en"
	}
	if _, ok := greetings[lang]; !ok {
		return "", "", &ValidationError{Field: "language", Reason: fmt.Sprintf("%q is not one of en, fr, de, es, nl", req.Language)}
	}
	return name, lang, nil
}
