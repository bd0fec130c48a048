package fakeslack

import "strings"

// User is a workspace member as users.info reports it.
type User struct {
	ID       string
	Name     string
	RealName string
	Email    string
	Deleted  bool
	IsBot    bool
	// IsRestricted is a multi-channel guest, IsUltraRestricted a single-channel guest.
	IsRestricted      bool
	IsUltraRestricted bool
}

// Group is a user group (subteam).
type Group struct {
	ID      string
	Handle  string
	Name    string
	Members []string
}

// AddUser adds or replaces a user.
func (s *Server) AddUser(u User) {
	if u.Name == "" {
		u.Name = strings.ToLower(u.ID)
	}
	if u.RealName == "" {
		u.RealName = u.Name
	}
	s.mu.Lock()
	s.users[u.ID] = u
	s.mu.Unlock()
}

// User returns a seeded user.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// AddGroup adds or replaces a user group.
func (s *Server) AddGroup(handle, id string, members ...string) {
	g := Group{ID: id, Handle: handle, Name: handle, Members: append([]string(nil), members...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.groups {
		if s.groups[i].ID == id {
			s.groups[i] = g
			return
		}
	}
	s.groups = append(s.groups, g)
}

// SetGroupMembers replaces the members of the group with this handle or ID.
// It reports whether the group exists.
func (s *Server) SetGroupMembers(handleOrID string, members ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.groups {
		if s.groups[i].ID == handleOrID || s.groups[i].Handle == handleOrID {
			s.groups[i].Members = append([]string(nil), members...)
			return true
		}
	}
	return false
}

func (s *Server) userJSON(u User) map[string]any {
	return map[string]any{
		"id":                  u.ID,
		"team_id":             s.cfg.teamID,
		"name":                u.Name,
		"deleted":             u.Deleted,
		"real_name":           u.RealName,
		"tz":                  "Europe/Amsterdam",
		"is_bot":              u.IsBot,
		"is_admin":            false,
		"is_restricted":       u.IsRestricted,
		"is_ultra_restricted": u.IsUltraRestricted,
		"is_app_user":         false,
		"is_email_confirmed":  u.Email != "",
		"profile": map[string]any{
			"email":        u.Email,
			"real_name":    u.RealName,
			"display_name": u.Name,
			"team":         s.cfg.teamID,
		},
	}
}

func (s *Server) groupJSON(g Group, withUsers bool) map[string]any {
	out := map[string]any{
		"id":           g.ID,
		"team_id":      s.cfg.teamID,
		"is_usergroup": true,
		"name":         g.Name,
		"description":  "",
		"handle":       g.Handle,
		"is_external":  false,
		"date_create":  1700000000,
		"date_update":  1700000000,
		"date_delete":  0,
		"auto_type":    nil,
		"created_by":   "U0ADMIN",
		"updated_by":   "U0ADMIN",
		"deleted_by":   nil,
		"prefs":        map[string]any{"channels": []string{}, "groups": []string{}},
		"user_count":   len(g.Members),
	}
	if withUsers {
		users := g.Members
		if users == nil {
			users = []string{}
		}
		out["users"] = users
	}
	return out
}
