package app

// Temporary: pins the product's dependencies while packages are written.
import (
	_ "github.com/PagerDuty/go-pagerduty"
	_ "github.com/andygrunwald/go-jira"
	_ "github.com/gorilla/websocket"
	_ "github.com/hashicorp/vault/api"
	_ "github.com/hashicorp/vault/api/auth/approle"
	_ "github.com/slack-go/slack"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
