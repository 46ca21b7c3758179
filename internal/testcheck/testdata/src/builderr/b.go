package builderr

func F() int { return "not an int" }
