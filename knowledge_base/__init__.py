"""Knowledge base: the default replies coordinators write and operators pick in the chat."""
