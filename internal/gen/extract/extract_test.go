package extract

import "testing"

func TestIsMutation(t *testing.T) {
	for name, want := range map[string]bool{
		"Create": true, "CreateUser": true, "Update": true, "UpdateAll": true, "Upsert": true,
		"Delete": true, "DeleteByID": true, "Remove": true, "Save": true, "SaveAll": true,
		"Set": true, "SetName": true, "Insert": true, "Patch": true, "Set2": true, "Save_": true,
		"Settings": false, "Saved": false, "Setup": false, "Deleted": false, "Find": false,
		"Get": false, "delete": false, "Reset": false, "Patches": false, "": false,
	} {
		if got := IsMutation(name); got != want {
			t.Errorf("IsMutation(%q) = %v, want %v", name, got, want)
		}
	}
}
