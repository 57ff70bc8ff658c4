package github

import "testing"

// TestGraphQLURL: the Projects v2 operations go to github.com's GraphQL
// endpoint, or to https://HOST/api/graphql on GitHub Enterprise (whose
// REST root is https://HOST/api/v3), as DECISIONS says.
func TestGraphQLURL(t *testing.T) {
	for api, want := range map[string]string{
		"":                                "https://api.github.com/graphql",
		"https://api.github.com":          "https://api.github.com/graphql",
		"https://api.github.com/":         "https://api.github.com/graphql",
		"https://ghe.example.com/api/v3":  "https://ghe.example.com/api/graphql",
		"https://ghe.example.com/api/v3/": "https://ghe.example.com/api/graphql",
		"http://127.0.0.1:8080":           "http://127.0.0.1:8080/graphql",
	} {
		if got := graphqlURL(api); got != want {
			t.Errorf("graphqlURL(%q) = %q, want %q", api, got, want)
		}
	}
}
