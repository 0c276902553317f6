package extract

import "testing"

func TestIsMutation(t *testing.T) {
	for name, want := range map[string]bool{
		"Create": true, "CreateUser": true, "Update": true, "UpdateAll": true, "Upsert": true,
		"Delete": true, "DeleteByID": true, "Remove": true, "Save": true, "SaveAll": true,
		"Set": true, "SetName": true, "Insert": true, "Patch": true, "Set2": true, "Save_": true,
		"Settings": false, "Saved": false, "Setup": false, "Deleted": false, "Find": false,
		"Get": false, "delete": false, "Patches": false, "": false,
		"Reset": true, "AddMember": true, "Add": true, "TouchSession": true, "Star": true, "Unstar": true,
		"Follow": true, "ConsumeCode": true, "CleanExpired": true, "IncrCount": true, "Increment": true,
		"Watch": true, "Unwatch": true, "Publish": true, "Purge": true, "RevokeToken": true, "Toggle": true,
		"Address": false, "Added": false, "Starred": false, "Marked": false, "Watches": false, "Mergeable": false,
		"Changes": false, "Cleaner": false, "Movement": false, "Touches": false, "Decrypt": false,
	} {
		if got := IsMutation(name); got != want {
			t.Errorf("IsMutation(%q) = %v, want %v", name, got, want)
		}
	}
}
