// Package outbox defines the messages the bot owes people. They are stored
// before they are sent, so an outage or a crash delays them but never drops
// them. A message never carries a credential: a credential is made at the
// moment of delivery, from a reference the message holds.
package outbox

import "encoding/json"

// Kinds of delivery.
const (
	Respond   = "respond"   // POST to a slash command's or click's response_url
	Post      = "post"      // chat.postMessage to a channel
	Ephemeral = "ephemeral" // chat.postEphemeral to one user in a channel
	Update    = "update"    // chat.update of a message the bot posted
	DM        = "dm"        // chat.postMessage to a user's direct-message channel
)

// Kinds that are work, not Slack messages: the deliverer hands them to the
// access service or to Jira. They never carry a credential either.
const (
	// DeliverGrant: Target is a grant id; the deliverer calls
	// access.Service.Deliver, which makes the credential and DMs it.
	DeliverGrant = "deliver-grant"
	// JiraComment: Target is a ticket key, Text the comment body.
	JiraComment = "jira-comment"
	// JiraOpen: Target is a grant id; the deliverer calls
	// access.Service.OpenTicket, which opens the grant's access-log ticket.
	JiraOpen = "jira-open"
)

// Message is one message owed.
type Message struct {
	Kind            string          `json:"kind"`
	Target          string          `json:"target"`           // response_url, channel id or user id
	User            string          `json:"user,omitempty"`   // Ephemeral: who sees it
	TS              string          `json:"ts,omitempty"`     // Update: the message to change
	Thread          string          `json:"thread,omitempty"` // optional thread ts
	Text            string          `json:"text"`             // mrkdwn, also the notification fallback
	Blocks          json.RawMessage `json:"blocks,omitempty"` // Block Kit JSON
	ReplaceOriginal bool            `json:"replace_original,omitempty"`
}

// Marshal encodes m for storage.
func (m Message) Marshal() ([]byte, error) { return json.Marshal(m) }

// Unmarshal decodes a stored message.
func Unmarshal(b []byte) (Message, error) {
	var m Message
	err := json.Unmarshal(b, &m)
	return m, err
}
