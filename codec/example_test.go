package codec_test

import (
	"errors"
	"fmt"

	"github.com/repocache/repocache/codec"
)

// Example shows a round trip, and a value of another layout refused as
// foreign.
func Example() {
	type User struct {
		ID           int64
		PasswordHash string `json:"-"` // kept: MessagePack stores values whole
	}
	type UserV2 struct {
		ID           int64
		PasswordHash string `json:"-"`
		Email        string
	}
	b, _ := codec.Marshal(codec.Msgpack{}, User{ID: 7, PasswordHash: "h"})
	u, err := codec.Unmarshal[User](codec.Msgpack{}, b)
	fmt.Println(u.ID, u.PasswordHash, err)
	_, err = codec.Unmarshal[UserV2](codec.Msgpack{}, b)
	fmt.Println(errors.Is(err, codec.ErrForeign))
	// Output:
	// 7 h <nil>
	// true
}
